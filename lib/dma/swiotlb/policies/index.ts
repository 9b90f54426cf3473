/** Every swiotlb design registers itself on import. */
import './static';
import './chunked-growth';
import './upstream';
