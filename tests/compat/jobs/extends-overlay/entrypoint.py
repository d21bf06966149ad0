import os


class OverlayJob:
    def perform(self) -> dict:
        return {'stage': os.environ.get('STAGE'), 'color': os.environ.get('COLOR')}
