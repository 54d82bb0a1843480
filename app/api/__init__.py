"""HTTP routers: thin glue between requests and the ingest, exposition and health code."""
