import logging

from racetrack_job_wrapper.entrypoint import JobEntrypoint
from racetrack_job_wrapper.log.logs import get_logger

logger = get_logger(__name__)


class ContextJob(JobEntrypoint):
    def perform(self) -> dict:
        """Tell who called, as Pub says."""
        request = self.request_context.get()
        logger.info('called')
        return {
            'caller': request.headers.get('X-Caller-Name'),
            'tracing_id': request.headers.get('X-Request-Tracing-Id'),
        }
