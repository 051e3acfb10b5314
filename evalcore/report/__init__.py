"""What a run leaves behind for people and CI: JUnit XML (and, later, HTML and Markdown)."""
