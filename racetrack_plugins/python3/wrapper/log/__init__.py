"""The original wrapper's ``racetrack_job_wrapper.log`` package, for job code that imports it."""
