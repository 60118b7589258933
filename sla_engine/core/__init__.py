"""The engine's pure core: calendars, their compiled timelines, durations, policies and the
ticket clock. Nothing here touches a database, the network or the clock on the wall."""
