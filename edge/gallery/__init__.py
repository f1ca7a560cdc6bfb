"""The encrypted gallery (its store, key, lock, backups and events) and what is built
on it: the matcher, enrolment and attendance."""
