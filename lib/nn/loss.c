/*
 * loss.c — softmax cross-entropy with optional label smoothing (PyTorch's
 * CrossEntropyLoss(label_smoothing=s): target = (1-s) onehot + s/NC).
 * The loss is the mean over the N rows.
 */
#include "nn/nn.h"

#include <math.h>

float softmax_xent_forward(float *probs, int *correct, const float *logits, const unsigned char *targets,
                           int N, int NC, float smoothing) {
    double total = 0.0;
    int ncorrect = 0;
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * NC;
        float *p = probs + (size_t)n * NC;
        float zmax = z[0];
        int arg = 0;
        for (int c = 1; c < NC; c++)
            if (z[c] > zmax) { zmax = z[c]; arg = c; }
        double sum = 0.0;
        for (int c = 0; c < NC; c++) {
            p[c] = expf(z[c] - zmax);
            sum += p[c];
        }
        float inv = (float)(1.0 / sum);
        double logsum = log(sum) + zmax; /* log sum exp z */
        for (int c = 0; c < NC; c++) p[c] *= inv;
        int t = targets[n];
        double nll = logsum - z[t];
        if (smoothing > 0.0f) {
            double mean_nll = 0.0;
            for (int c = 0; c < NC; c++) mean_nll += logsum - z[c];
            mean_nll /= NC;
            nll = (1.0 - smoothing) * nll + smoothing * mean_nll;
        }
        total += nll;
        if (arg == t) ncorrect++;
    }
    if (correct) *correct = ncorrect;
    return (float)(total / N);
}

void softmax_xent_backward(float *dlogits, const float *probs, const unsigned char *targets, int N, int NC,
                           float smoothing) {
    float invN = 1.0f / (float)N;
    float off = smoothing / (float)NC;
    for (int n = 0; n < N; n++) {
        const float *p = probs + (size_t)n * NC;
        float *d = dlogits + (size_t)n * NC;
        int t = targets[n];
        for (int c = 0; c < NC; c++) {
            float target = off + (c == t ? 1.0f - smoothing : 0.0f);
            d[c] += (p[c] - target) * invN;
        }
    }
}
