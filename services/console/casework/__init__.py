"""The casework pages' view helpers: shaping the services' answers for templates, no decisions."""
