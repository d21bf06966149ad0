from racetrack_job_wrapper.call import call_job


class JobEntrypoint:
    def perform(self, numbers: list) -> float:
        """Sum the numbers with the adder job, then double the result."""
        result = call_job(self, 'adder', '/api/v1/perform', {'numbers': numbers})
        return result * 2

    def docs_input_example(self) -> dict:
        return {'numbers': [1, 2, 3]}
