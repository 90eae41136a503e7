/* placeholder: module under construction */
typedef int sl_placeholder_t;
