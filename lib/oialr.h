/*
 * oialr.h — everything of liboialr in one include.
 * The recorder alone needs only "oialr/trajectory.h".
 */
#ifndef OIALR_H
#define OIALR_H
#include "oialr/base.h"
#include "oialr/params.h"
#include "oialr/data.h"
#include "oialr/model.h"
#include "oialr/optim.h"
#include "oialr/train.h"
#include "oialr/trajectory.h"
#include "oialr/record.h"
#include "oialr/metrics.h"
#include "oialr/lowrank.h"
#endif
