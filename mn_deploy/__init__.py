"""The mn-deploy application: command line, settings and the wiring of core and backends."""
