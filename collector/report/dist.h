/* dist: the distribution functions the statistics need (normal, Student t,
 * gamma), in plain C with no tables, so that every interval and p-value
 * uses the same exact quantile (no "1.96 from df 30" approximations).
 *
 * Algorithms: the regularized incomplete beta and gamma functions by their
 * continued fractions and series (Press et al., Numerical Recipes in C,
 * 2nd ed., 6.2 and 6.4); quantiles by bisection on the monotone CDF, which
 * is slow but cannot fail to converge.  Accuracy about 1e-10. */
#ifndef BM_DIST_H
#define BM_DIST_H

/* Two-sided p-value of a standard normal statistic z: P(|Z| >= |z|). */
double bm_norm_p2(double z);

/* Two-sided p-value of a Student t statistic with df > 0 degrees of freedom
 * (df may be fractional, Welch-Satterthwaite); df <= 0 or infinite: the
 * normal one. */
double bm_t_p2(double t, double df);

/* The critical value c with bm_t_p2(c, df) = alpha (0 < alpha < 1): the
 * two-sided (1 - alpha) quantile of t; df <= 0 or infinite: the normal one. */
double bm_t_crit(double alpha, double df);

/* The regularized incomplete beta I_x(a, b), a, b > 0, 0 <= x <= 1. */
double bm_ibeta(double a, double b, double x);

/* The regularized lower incomplete gamma P(a, x), a > 0, x >= 0. */
double bm_gamma_p(double a, double x);

/* The p-quantile of the Gamma(a, 1) distribution (0 < p < 1, a > 0). */
double bm_gamma_quantile(double a, double p);

#endif
