"""The static results site: rendered with jinja2 from run records, readable offline from disk."""
