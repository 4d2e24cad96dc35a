// dzfs train: conversion between the trainer's integer tensors and the codec's model tensors.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "codec/model.h"
#include "train/qat.h"

namespace dzfs::train {

codec::ModelTensors to_model_tensors(const IntTensors& t,
                                     std::vector<std::pair<std::string, std::string>> manifest);
IntTensors from_model_tensors(const codec::ModelTensors& m);
NetConfig net_config_of(const codec::ModelTensors& m, int threads);

}  // namespace dzfs::train
