class MetricsJob:
    def __init__(self):
        self.counter = 0

    def perform(self) -> int:
        """Count the calls."""
        self.counter += 1
        return self.counter

    def metrics(self):
        return [
            {
                'name': 'job_calls_counted',
                'description': 'Calls counted by the job itself',
                'value': self.counter,
                'labels': {'color': 'blue'},
            },
            {
                'name': 'job_is_crazy',
                'description': 'Whether the job is crazy',
                'value': 1,
            },
        ]
