"""The local server (`./dev serve`) and its /registry/ inspection API and page: never shipped in the Lambda zip."""
