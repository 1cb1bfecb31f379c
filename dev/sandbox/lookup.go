package sandbox

// SellerOfToken tells whose refresh or access token token is, for test
// harnesses that attribute what happened to a call (chaos/ traces every
// failure to the seller whose token it carried). It never reveals a token.
func (s *Server) SellerOfToken(token string) (sellerID string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rt := s.refreshTokens[token]; rt != nil {
		return rt.sellerID, true
	}
	if at := s.accessTokens[token]; at != nil && at.sellerID != "" {
		return at.sellerID, true
	}
	return "", false
}
