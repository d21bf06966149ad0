"""A job that calls another job: which of the numbers are prime, as the ``primer`` job says."""

from __future__ import annotations

from racetrack_job_wrapper import call_job


class JobEntrypoint:
    def perform(self, numbers: list[int]) -> dict[str, list[int]]:
        """Split the numbers into primes and the rest, asking the primer job about each."""
        primes: list[int] = []
        others: list[int] = []
        for number in numbers:
            is_prime = call_job("primer", "/api/v1/perform", {"number": number})
            (primes if is_prime else others).append(number)
        return {"primes": primes, "others": others}

    def docs_input_example(self) -> dict[str, list[int]]:
        return {"numbers": [2, 7, 9, 7907]}
