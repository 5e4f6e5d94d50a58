"""Where slarules writes: one lock over a run's outputs and one way to put bytes on disk.

Every command that writes (batch and its statement, diff, replay reports, decision logs, Spark's
driver, the server) goes through this package, so the promises "a second run cannot damage the
first", "a file is either as it was or complete" and "an I/O error names the file" are kept by
one mechanism instead of by each writer.
"""
