"""Operators: the admin API, the admin page, and the audit log of every admin action."""
