"""Members of the community: the people who sign up on the project's website."""
