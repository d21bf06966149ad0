from http import HTTPMethod

from racetrack_job_wrapper.endpoint_config import EndpointConfig


class RoutesJob:
    def perform(self, n: int) -> int:
        return n * 2

    def auxiliary_endpoints_v2(self) -> list:
        return [
            EndpointConfig('/multiply/{factor}', HTTPMethod.POST, self.multiply),
            EndpointConfig('/square', HTTPMethod.GET, self.square),
        ]

    def multiply(self, factor: float, value: float) -> float:
        return factor * value

    def square(self, x: int) -> int:
        return x * x
