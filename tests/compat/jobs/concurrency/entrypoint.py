import time


class SlowJob:
    def perform(self, seconds: float = 1.0) -> str:
        time.sleep(seconds)
        return 'done'
