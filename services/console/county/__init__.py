"""The county pages' helpers: what the services answered, arranged for the county's views."""
