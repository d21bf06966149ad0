import hashlib
import os


class SecretJob:
    def perform(self) -> dict:
        """Prove the secrets are there without showing them."""
        token = os.environ.get('SECRET_TOKEN', '')
        return {
            'token_sha256': hashlib.sha256(token.encode()).hexdigest(),
            'quoted': os.environ.get('SECRET_QUOTED'),
            'plain': os.environ.get('PLAIN_SETTING'),
            'env_file_shipped': os.path.exists('.env.runtime'),
        }
