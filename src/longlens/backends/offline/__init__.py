"""The embedded offline backend: answers on-screen text and salient colour/shape questions with no weights
fetched from anywhere (RapidOCR's models ship in its wheel). It speaks LOVE-R1's protocol."""

from longlens.backends.offline.backend import OfflineBackend

__all__ = ["OfflineBackend"]
