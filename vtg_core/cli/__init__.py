"""The ``vtg`` command line. Sub-commands import heavy modules only when they run."""
