/* dist: normal, Student t and gamma distribution functions (dist.h).
 * Pure functions, no state. */
#include "dist.h"

#include <float.h>
#include <math.h>

#define S_EPS 1e-15
#define S_TINY 1e-300

double bm_norm_p2(double z)
{
    return erfc(fabs(z) / M_SQRT2);
}

/* Continued fraction of the incomplete beta (Numerical Recipes 6.4,
 * modified Lentz's method). */
static double s_betacf(double a, double b, double x)
{
    double qab = a + b, qap = a + 1.0, qam = a - 1.0;
    double c = 1.0, d = 1.0 - qab * x / qap;
    if (fabs(d) < S_TINY)
        d = S_TINY;
    d = 1.0 / d;
    double h = d;
    for (int m = 1; m <= 1000; m++) {
        int m2 = 2 * m;
        double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if (fabs(d) < S_TINY)
            d = S_TINY;
        c = 1.0 + aa / c;
        if (fabs(c) < S_TINY)
            c = S_TINY;
        d = 1.0 / d;
        h *= d * c;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if (fabs(d) < S_TINY)
            d = S_TINY;
        c = 1.0 + aa / c;
        if (fabs(c) < S_TINY)
            c = S_TINY;
        d = 1.0 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1.0) < S_EPS)
            break;
    }
    return h;
}

double bm_ibeta(double a, double b, double x)
{
    if (x <= 0)
        return 0;
    if (x >= 1)
        return 1;
    double lbt = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
    double bt = exp(lbt);
    /* The fraction converges fast for x < (a + 1) / (a + b + 2); use the
     * symmetry I_x(a, b) = 1 - I_{1-x}(b, a) on the other side. */
    if (x < (a + 1.0) / (a + b + 2.0))
        return bt * s_betacf(a, b, x) / a;
    return 1.0 - bt * s_betacf(b, a, 1.0 - x) / b;
}

double bm_t_p2(double t, double df)
{
    if (!(df > 0) || isinf(df) || df > 1e7)
        return bm_norm_p2(t);
    double x = df / (df + t * t);
    return bm_ibeta(df / 2.0, 0.5, x);
}

double bm_t_crit(double alpha, double df)
{
    /* The p-value falls from 1 at c = 0; bracket, then bisect. */
    double lo = 0, hi = 2;
    while (bm_t_p2(hi, df) > alpha && hi < 1e12)
        hi *= 2;
    for (int i = 0; i < 200 && hi - lo > 1e-12 * hi; i++) {
        double mid = 0.5 * (lo + hi);
        if (bm_t_p2(mid, df) > alpha)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

/* P(a, x) by its series (x < a + 1) and Q(a, x) by its continued fraction
 * (otherwise), Numerical Recipes 6.2. */
double bm_gamma_p(double a, double x)
{
    if (!(x > 0))
        return 0;
    double gln = lgamma(a);
    if (x < a + 1.0) {
        double ap = a, sum = 1.0 / a, del = sum;
        for (int n = 0; n < 10000; n++) {
            ap += 1;
            del *= x / ap;
            sum += del;
            if (fabs(del) < fabs(sum) * S_EPS)
                break;
        }
        return sum * exp(-x + a * log(x) - gln);
    }
    double b = x + 1.0 - a, c = 1.0 / S_TINY, d = 1.0 / b, h = d;
    for (int i = 1; i < 10000; i++) {
        double an = -i * (i - a);
        b += 2.0;
        d = an * d + b;
        if (fabs(d) < S_TINY)
            d = S_TINY;
        c = b + an / c;
        if (fabs(c) < S_TINY)
            c = S_TINY;
        d = 1.0 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1.0) < S_EPS)
            break;
    }
    return 1.0 - exp(-x + a * log(x) - gln) * h;
}

double bm_gamma_quantile(double a, double p)
{
    double lo = 0, hi = a + 10.0 * sqrt(a) + 10.0;
    while (bm_gamma_p(a, hi) < p && hi < DBL_MAX / 4)
        hi *= 2;
    for (int i = 0; i < 200 && hi - lo > 1e-12 * (hi > 1 ? hi : 1); i++) {
        double mid = 0.5 * (lo + hi);
        if (bm_gamma_p(a, mid) < p)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}
