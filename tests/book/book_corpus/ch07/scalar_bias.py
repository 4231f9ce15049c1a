# A filter applied with a scalar bias (b = 0) to a float32 image by float64 weights.
import sys, os
sys.path.append(os.pardir)
import numpy as np
from dataset.mnist import load_mnist
from common.layers import Convolution, Affine

(x_train, _), _ = load_mnist(flatten=False)
img = x_train[:1]                                 # float32 (1, 1, 28, 28)
np.random.seed(3)
w = np.random.randn(4, 1, 5, 5)                   # float64
for i in range(4):
    conv_layer = Convolution(w[i].reshape(1, *w[i].shape), 0)
    out = conv_layer.forward(img)
    print("filter" + str(i) + ": " + str(out.dtype) + " " + str(out.shape) + " " + repr(float(out.sum())))
aff = Affine(np.ones((3, 2), dtype=np.float32), np.array(0.5))
print("affine: " + str(aff.forward(np.arange(6).reshape(2, 3)).tolist()))
