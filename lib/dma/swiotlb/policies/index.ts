/** Every swiotlb design registers itself on import. */
import './static';
