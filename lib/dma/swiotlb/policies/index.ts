/** Every swiotlb design registers itself on import. */
import './static';
import './rfc-dynamic';
import './v2-list';
import './rbtree';
import './chunked-growth';
import './upstream';
