"""Plan -> samples: ``plan`` orders the work, ``runner`` executes it, ``rundir`` writes the run
directory (scenario copies, environment.json, signal handling)."""
