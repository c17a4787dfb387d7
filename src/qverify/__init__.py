"""qverify: prove a CMSIS-NN q15 network computes what its fixed-point model says, bit for bit."""

__version__ = "0.1.0"

__all__ = ["__version__"]
