class StaticJob:
    def perform(self) -> str:
        return 'see the static endpoints'

    def static_endpoints(self):
        """Dict of endpoint paths mapped to local files or directories"""
        return {
            '/readme': 'README.md',
            '/config': ('config.json', 'application/json'),
            '/docs': 'docs/',
        }
