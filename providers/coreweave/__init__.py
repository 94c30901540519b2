"""CoreWeave (CKS) adapter: node pools are ``compute.coreweave.com/v1alpha1`` NodePool objects, talked to
through the official ``kubernetes`` client only (imported lazily)."""
