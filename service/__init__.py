"""riskwire: fraud-scoring enrichment for Fingerprint and IPQS results, delivered to Segment."""

__version__ = "0.1.0"
