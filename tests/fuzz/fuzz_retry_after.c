/*
 * fuzz_retry_after.c: http_retry_after_ms (lib/http.h), the Retry-After
 * parser: delta seconds, or an HTTP date read with curl_getdate.
 *
 * The input is the header value, a C string in an exactly sized buffer,
 * parsed against a fixed clock.  Invariants: the result is -1 or a whole
 * number of seconds >= 0; a delta (a digit first) is at most 366 days and
 * does not depend on the clock; a date does, by exactly the time that
 * passed (one second later the wait is 1000 ms shorter, down to 0, and a
 * refused date stays refused unless it comes within a cap of 366 days);
 * two calls agree.  UBSan reports an overflow in the arithmetic.
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"
#include "http.h"

#define NOW       1445412470L /* Wed, 21 Oct 2015 07:27:50 GMT */
#define DELTA_MAX (86400L * 366 * 1000)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *v = fuzz_str(data, size);
	const char *p = v;
	long r, again, later;

	r = http_retry_after_ms(v, NOW);
	again = http_retry_after_ms(v, NOW);
	later = http_retry_after_ms(v, NOW + 1);
	FUZZ_CHECK(r == again);
	FUZZ_CHECK(r == -1 || (r >= 0 && r % 1000 == 0));
	while (*p == ' ')
		p++;
	if (*p >= '0' && *p <= '9') {
		FUZZ_CHECK(r <= DELTA_MAX);
		FUZZ_CHECK(later == r);
	} else if (r == -1) {
		/* Not a date, or one too far ahead: a second later it may be
		 * just within a cap of 366 days. */
		FUZZ_CHECK(later == -1 || later == DELTA_MAX);
	} else {
		FUZZ_CHECK(later == (r > 1000 ? r - 1000 : 0));
	}
	free(v);
	return 0;
}
