"""Federation: the external platforms, members' links to them, and members' consent."""
