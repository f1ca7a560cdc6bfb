"""The administrators' web app (``facegate web``): a process of its own that reads and
changes the gallery and talks to the door loop only through its control socket."""
