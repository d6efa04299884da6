//go:build !unix

package queue

// giveToSpoolOwner has nothing to do where files have no Unix owner: on
// Windows the spool's ACL, inherited by new files, decides access.
func giveToSpoolOwner(dir, path string) {}
