"""The words of the page that handlers and tests both read."""
RESTORE, COMPLETE = "restore (teacher-forced)", "complete from the first rows"
