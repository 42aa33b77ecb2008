"""What leafdoc says to people, one wording shared by the CLI, the web page and the desktop app."""
