/* sl_assert.h - invariant checks kept on in release builds (TigerBeetle style): a broken
 * invariant stops the process loudly instead of corrupting acknowledged data. */
#ifndef SL_ASSERT_H
#define SL_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#define SL_ASSERT(cond)                                                                    \
	do {                                                                               \
		if (__builtin_expect(!(cond), 0)) {                                        \
			fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                    \
			abort();                                                           \
		}                                                                          \
	} while (0)

#define SL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
