import os


class EnvJob:
    def perform(self) -> dict:
        """Show the environment the job runs with."""
        return {
            'greeting': os.environ.get('GREETING'),
            'debug': os.environ.get('DEBUG'),
            'job_name': os.environ.get('JOB_NAME'),
            'job_version': os.environ.get('JOB_VERSION'),
            'has_pub_url': bool(os.environ.get('PUB_URL')),
            'has_auth_token': bool(os.environ.get('AUTH_TOKEN')),
        }
