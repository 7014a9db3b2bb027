"""What every HTML page shares: languages, templates, the visitor, CSRF."""
