"""The versioned dataset a team keeps in git: cases, scorecard, owners."""
