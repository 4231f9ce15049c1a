"""Data sets: MNIST (full download or the shipped sample) and Fashion-MNIST."""
from .mnist import DataUnavailable, SettingError, data_dir, load_fashion_mnist, load_mnist

__all__ = ["load_mnist", "load_fashion_mnist", "data_dir", "DataUnavailable", "SettingError"]
