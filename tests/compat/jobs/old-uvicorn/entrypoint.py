from importlib import metadata


class OldUvicorn:
    def perform(self) -> dict:
        """The versions of the packages that the job imports itself."""
        import anyio
        import h11
        import uvicorn

        return {
            "uvicorn": uvicorn.__version__,
            "h11": h11.__version__,
            "anyio": metadata.version("anyio"),
            "anyio_module": anyio.__name__,
        }
