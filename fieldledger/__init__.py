"""fieldledger: ServiceTitan to Acumatica / Deltek Vantagepoint, exactly once, on Dagster."""

__version__ = "0.1.0"
