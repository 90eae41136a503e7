/* consensus.c - registry of replication protocols by name. A new protocol adds its ops
 * struct here and nowhere else. */
#include <string.h>

#include "consensus.h"

static const struct sl_cons_ops *const protocols[] = {
	&sl_cons_standalone_ops,
	&sl_cons_raft_ops,
};

const struct sl_cons_ops *sl_cons_find(const char *name)
{
	for (size_t i = 0; i < sizeof(protocols) / sizeof(protocols[0]); i++)
		if (strcmp(protocols[i]->name, name) == 0)
			return protocols[i];
	return NULL;
}
