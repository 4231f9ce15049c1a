# Gradients printed per parameter, in the order the network reports them.
import sys, os
sys.path.append(os.pardir)
import numpy as np
from dataset.mnist import load_mnist
from common.multi_layer_net_extend import MultiLayerNetExtend

(x_train, t_train), _ = load_mnist(normalize=True, one_hot_label=True)
np.random.seed(1)
network = MultiLayerNetExtend(input_size=784, hidden_size_list=[8, 6], output_size=10,
                              use_batchnorm=True)
x_batch, t_batch = x_train[:2], t_train[:2]
grad_backprop = network.gradient(x_batch, t_batch)
grad_numerical = network.numerical_gradient(x_batch, t_batch)
print("params:" + ",".join(network.params.keys()))
print("grads:" + ",".join(grad_backprop.keys()))
for key in grad_numerical.keys():
    diff = np.average(np.abs(grad_backprop[key] - grad_numerical[key]))
    print(key + ":" + str(diff))
