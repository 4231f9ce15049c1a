import numpy as np
import fastdl
from fastdl.functions import softmax
from fastdl.nets import TwoLayerNet
from fastdl.optimizers import Adam

print(softmax(np.array([0.3, 2.9, 4.0])))

np.random.seed(0)
net = TwoLayerNet(input_size=784, hidden_size=10, output_size=10)
x = np.random.rand(3, 784)
t = np.array([3, 1, 4])
grad = net.gradient(x, t)                     # backpropagation
with fastdl.using_backend("numpy"):           # run on the reference kernels
    num = net.numerical_gradient(x, t)        # central differences, h = 1e-4
for key in ("W1", "b1", "W2", "b2"):
    print(key, f"{np.mean(np.abs(grad[key] - num[key])):.1e}")

opt = Adam()
for step in range(100):
    opt.update(net.params, net.gradient(x, t))
print("loss after 100 Adam steps:", round(float(net.loss(x, t)), 4))
