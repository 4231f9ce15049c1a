# Accuracy of a trained network with its parameters and inputs rounded to float16.
import sys, os
sys.path.append(os.pardir)
import numpy as np
from dataset.mnist import load_mnist
from common.multi_layer_net import MultiLayerNet
from common.optimizer import Adam

(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True)
np.random.seed(5)
network = MultiLayerNet(input_size=784, hidden_size_list=[50], output_size=10)
opt = Adam()
for i in range(300):
    mask = np.random.choice(x_train.shape[0], 100)
    opt.update(network.params, network.gradient(x_train[mask], t_train[mask]))
x_test, t_test = x_test[:2000], t_test[:2000]
print("float64:" + str(network.accuracy(x_test, t_test)))
x_test = x_test.astype(np.float16)
for param in network.params.values():
    param[...] = param.astype(np.float16)
print("float16:" + str(network.accuracy(x_test, t_test)))
